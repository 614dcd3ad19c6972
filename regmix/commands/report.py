"""`regmix report`: the flags of regmix.evaluation.report."""
from ..evaluation.records import find_records
from ..evaluation.report import build_table, format_table
from .flags import flag_names

FLAGS = {"group_by": "--group-by", "fmt": "--format"}


def add_parser(sub):
    p = sub.add_parser("report", help="turn evaluation records into a paper table (mean +- std over seeds)",
                       description="RECORDS are record files, run directories (their eval/*.json) or folders "
                                   "of run directories. Accuracies in percent, mean +- std over the seeds of "
                                   "each row. A row is one setting: the --group-by field and everything else "
                                   "that was evaluated except the seed (method options, model, data, n, "
                                   "threat, checkpoint, attacks); the columns show the fields that differ "
                                   "between rows, a note the ones they share. A run counts once however its "
                                   "path was spelled (run id). AutoAttack's own warnings are listed under "
                                   "the table.")
    p.add_argument("records", nargs="+", metavar="RECORDS")
    p.add_argument("--format", default="md", choices=["md", "latex", "csv"])
    p.add_argument("--group-by", default="method",
                   help="record field to label rows by: method, model, dataset, checkpoint, method_options.alpha, ...")
    p.set_defaults(func=run)


def run(args):
    with flag_names(FLAGS):
        table = format_table(build_table(find_records(args.records), args.group_by), args.format)
    print(table)
