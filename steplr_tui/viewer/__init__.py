"""The viewer side: the dashboard, which only ever reads a run folder and asks the run.

Sources of events (a run in this app's thread, or a run folder tailed by a
watcher thread), the fold of those events into what a viewer knows, the steering
draft, the controller, and the Textual app with its screens and widgets. Nothing
here imports torch at import time; a run started in the app's own thread imports
the run side in its worker.
"""
