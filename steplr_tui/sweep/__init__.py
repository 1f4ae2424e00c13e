"""A sweep's worker: it schedules trials as runs and reconciles them with the study, so it
sits over the run side and the study (and under the command line, which starts it)."""
