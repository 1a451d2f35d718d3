/* global SwaggerUIBundle */
// /docs: Swagger UI started from a file, so the page needs no inline script under its strict CSP.
SwaggerUIBundle({
  url: document.body.dataset.openapi,
  dom_id: '#swagger-ui',
  layout: 'BaseLayout',
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
