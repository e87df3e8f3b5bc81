"""``neurofm datasets``: list the data set specs, download a MOABB data set (on request only).

``neurofm probe`` and ``neurofm finetune`` never download; when a MOABB data set is not on disk
they stop and print the command of this module that downloads it::

    neurofm datasets download moabb:BNCI2014_001
    neurofm datasets download "moabb:PhysionetMI?subjects=1-10"
    neurofm datasets download moabb:Shin2017A --accept     # a licence to accept first
"""

from __future__ import annotations

from neurofm.logs import get_logger

logger = get_logger(__name__)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "datasets", help="List data set specs; download a MOABB data set.",
        description="Data sets that neurofm probe / finetune read (--data). They never download; "
                    "`neurofm datasets download moabb:NAME` fetches a MOABB data set with "
                    "MOABB's own download into MNE's data folder (MNE_DATA, default "
                    "~/mne_data).")
    sub = parser.add_subparsers(dest="datasets_command", metavar="ACTION")
    listing = sub.add_parser("list", help="Example specs of every family of data sets.")
    listing.set_defaults(func=run_list)
    download = sub.add_parser("download", help="Download a MOABB data set (moabb:NAME).")
    download.add_argument("spec", help="moabb:NAME, optionally ?subjects=1,2 or 1-10")
    download.add_argument("--accept", action="store_true",
                          help="accept the data set's licence (needed by some MOABB data sets; "
                               "read it first)")
    download.set_defaults(func=run_download)
    parser.set_defaults(func=lambda args: parser.print_help() or 0)


def run_list(args) -> int:
    from neurofm.datasets.load import list_datasets

    for spec in list_datasets():
        print(spec)
    return 0


def run_download(args) -> int:
    from neurofm.data.data_spec import parse_data_spec
    from neurofm.datasets.moabb import dataset_by_name, moabb_options
    from neurofm.datasets.moabb_files import download_moabb, mne_data_folder

    spec = parse_data_spec(args.spec)
    if spec.scheme != "moabb":
        raise ValueError(f"Only MOABB data sets are downloaded (moabb:NAME); {args.spec!r} names "
                         "a simulated set, an installed package's set or a folder.")
    options = moabb_options(spec)
    extra = sorted(set(options) - {"subjects"})
    if extra:
        raise ValueError(f"download takes only subjects=...; drop {', '.join(extra)} (paradigm "
                         "options apply when the data are read).")
    dataset = dataset_by_name(spec.name)
    name = type(dataset).__name__
    logger.info("Downloading %s with MOABB into %s ...", name, mne_data_folder())
    files = download_moabb(dataset, name, subjects=options.get("subjects"), accept=args.accept)
    n_files = sum(len(f) for f in files.values())
    print(f"{name}: {len(files)} subject(s), {n_files} file(s) on disk.")
    return 0
