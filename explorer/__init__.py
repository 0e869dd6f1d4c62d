"""UI building blocks shared by the Streamlit pages (3D views, figures, cached core access).

Layers point one way: ``pages/*.py`` -> ``explorer`` -> the small ``diffusion`` API.
Modules that do not need Streamlit (``viewer``, ``figures``, ``examples``, ``numbers``,
``settings``) never import it, so they can be tested and reused without a running app.
"""
