def add_parser(sub):
    p = sub.add_parser("report", help="turn evaluation records into a paper table (mean +- std over seeds)",
                       description="RECORDS are record files, run directories (their eval/*.json) or folders "
                                   "of run directories. Accuracies in percent, mean +- std over the records "
                                   "of each group (seeds).")
    p.add_argument("records", nargs="+", metavar="RECORDS")
    p.add_argument("--format", default="md", choices=["md", "latex", "csv"])
    p.add_argument("--group-by", default="method",
                   help="record field to group by: method, model, dataset, checkpoint, method_options.alpha, ...")
    p.set_defaults(func=run)


def run(args):
    from ..evaluation.records import find_records
    from ..evaluation.report import build_table, format_table
    print(format_table(build_table(find_records(args.records), args.group_by), args.format))
