"""What the pages share, between them and the backend (aigc), which never imports Streamlit:

- cached.py   backend objects cached once per server: the run registry, models, grids, scores
- charts.py   Vega-Lite specifications: a run's live panels as its model declares them, the latent map
- session.py  this tab: its runs, the run its address names, share links, the checkpoints to pick from
- startup.py  a fresh server's first seconds: the backend imported in the background, the frame check
- widgets.py  the widget for each kind of setting a model declares, and the image element
"""
