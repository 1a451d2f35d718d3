"""Audit the installed packages for known vulnerabilities with pip-audit, and say what was audited.

pip-audit prints "No known vulnerabilities found" and exits 0 even when it could reach no
vulnerability database and skipped every package, which is a check that cannot fail. This script
runs it with JSON output, counts the packages it really audited, and exits 2 (not 0) when that is
none: no database reached means no audit, and it says so.

    python scripts/audit.py [--service pypi|osv]      (make audit)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--service", default="pypi", choices=["pypi", "osv"], help="vulnerability database")
    args = parser.parse_args(argv)
    run = subprocess.run([sys.executable, "-m", "pip_audit", "--format", "json", "--progress-spinner", "off",
                          "--vulnerability-service", args.service], capture_output=True, text=True)
    try:
        report = json.loads(run.stdout)
    except ValueError:
        print(f"audit: pip-audit gave no report (exit {run.returncode}):\n{run.stderr.strip()}")
        return 2
    deps = report.get("dependencies", [])
    skipped = [d for d in deps if d.get("skip_reason")]
    audited = [d for d in deps if not d.get("skip_reason")]
    vulnerable = [d for d in audited if d.get("vulns")]
    if not audited:
        print(f"audit: NOT RUN - {len(skipped)} packages skipped, none audited: the {args.service} "
              "vulnerability database could not be reached from this machine")
        return 2
    for d in vulnerable:
        ids = ", ".join(v["id"] for v in d["vulns"])
        print(f"audit: {d['name']} {d['version']}: {ids}")
    print(f"audit: {len(audited)} packages audited against {args.service}, {len(skipped)} skipped, "
          f"{len(vulnerable)} with known vulnerabilities")
    return 1 if vulnerable else 0


if __name__ == "__main__":
    sys.exit(main())
