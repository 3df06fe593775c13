"""Small reusable widgets (sparkline, stacked bar) for the dashboard and the model manager."""
