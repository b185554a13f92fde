"""One module per page; each calls ``dash.register_page`` and has ``register_callbacks``."""
