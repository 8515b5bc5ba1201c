"""Every write of the validators app, one module per concern; import from the submodule."""
