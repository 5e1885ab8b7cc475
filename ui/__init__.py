"""The Gradio user interface of Latent Explorer, composed by `app.py`.

vae/, hvae/, vdm/  one package per tab: layout.py (components), wiring.py (events, each with an
                   api_name), views.py (what the tab computes: plain functions of simple values,
                   so every view is also an API endpoint); vdm/run.py holds the session's
                   reverse run and vdm/frames.py the compact frames its page view is fed
panel.py     the input panel every tab shares (gallery, upload, drawing, slots A and B) and each
             tab's header (missing models, "About the model")
page.py      the page layer: views drawn by the ES modules in static/ (no build step), the
             MANIFEST of what page and server share, arrays for the page
events.py    `on` registers a view once for all its triggers; `api` an endpoint the page never
             fires (the public API keeps its results)
talk.py      scenes for a talk: presets and parts read from the page's URL
store.py     models and galleries, loaded once at import; cached gallery latents and 2-D maps
maps.py      PCA / t-SNE maps of the gallery's latents, new points placed by `transform`
common.py    images in (any picture -> the 28x28 the model sees), images out (nearest-neighbour
             upscaling, labelled strips and grids, PNG files), captions, friendly errors
plots.py     plotly figures (latent maps, posterior bars, ||z|| along a path, layers)
picture.py   gr.Image whose unreadable uploads reach the handler as a clear message
static/      the page's own code: ES modules (views/, lib/), app.css; `node --test tests/js`
"""
