"""The training loop's parts: schedule, run-directory claim, metrics log, the device path, the masking monitor.
`regmix.trainer` assembles them into `Trainer` and `train`."""
