"""The sweep's study: its search space, its definition and folder, its Optuna study
(storage, sampler, pruner, trials asked and told), and its trials as rows of text.

Below the run side (a trial's run reports to its study) and the viewer (the sweep view
reads the trials), above the run folder's format. No torch and no Textual; Optuna is
imported only when a study is opened.
"""
