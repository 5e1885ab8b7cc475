// The js_on_load of every view (ui/page.py): Gradio runs this body once when the view mounts,
// with `element`, `trigger`, `props`, `watch` and `server` in scope. The view's template carries what
// never changes (its module, the manifest, its config) as base64 JSON; this loads the module
// and hands it the view's element (the template's <div class="le-view">) to draw in.
//
// The events views trigger are named here, quoted, because Gradio registers a custom event of a
// gr.HTML only for names that appear so in its js_on_load:
// 'pick' 'hover' 'reset' 'png' 'draw' 'export'
const host = element.querySelector("[data-boot]");              // <div class="le-view ...">
const boot = JSON.parse(atob(host.dataset.boot));
import(new URL(boot.module, document.baseURI).href)
  .then((view) => view.mount({element: host, trigger, props, watch, server,
                              manifest: boot.manifest, config: boot.config}))
  .catch((error) => console.error(`Latent Explorer: the view ${boot.module} failed to load`, error));
