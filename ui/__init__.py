"""The Gradio user interface of Latent Explorer, composed by `app.py`.

vae_tab.py, hvae_tab.py, vdm_tab.py       one module per tab: layout and events (api_names)
vae_views.py, hvae_views.py, vdm_views.py what those tabs compute: plain functions of simple
                                          values, so every view is also an API endpoint
vdm_reverse.py                            the VDM tab's reverse run, held in the session
talk.py      scenes for a talk: presets and parts read from the page's URL
inputs.py    the input panel both model tabs share (gallery, upload, drawing, slots A and B)
store.py     models and galleries, loaded once at import; cached gallery latents and 2-D maps
maps.py      PCA / t-SNE maps of the gallery's latents, new points placed by `transform`
common.py    images in (any picture -> the 28x28 the model sees), images out (nearest-neighbour
             upscaling, labelled strips and grids, PNG files), captions, friendly errors
plots.py     plotly figures (latent maps, posterior bars, ||z|| along a path, layers)
bridge.py    the page script: plotly clicks and hovers back to Python, keys, presenter look
scrub_paint.py  the part of it that paints the VDM scrub in the page as t moves
picture.py   gr.Image with a clear error for unreadable uploads
"""
