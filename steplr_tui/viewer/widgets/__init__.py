"""Widgets of the dashboard: parameter panel, plot panes, status line."""
