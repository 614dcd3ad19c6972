"""The training loop's parts: schedule, run-directory claim, metrics log, fault injection.
`regmix.trainer` assembles them into `Trainer` and `train`."""
