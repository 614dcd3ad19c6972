"""One module per `regmix` sub-command; each has `add_parser(subparsers)` and sets `func`.

A new command is one module here plus one entry in COMMANDS.
"""
COMMANDS = ["train", "demo", "eval", "report", "sweep", "study", "landscape", "figures"]
