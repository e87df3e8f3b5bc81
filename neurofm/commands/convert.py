"""``neurofm convert cbramod|labram SRC OUT_DIR``: import published weights as a neurofm model."""

from __future__ import annotations

from neurofm.commands.flags import add_revision_flag


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="Import CBraMod or LaBraM weights (neurofm convert cbramod|labram SRC OUT_DIR).",
        description="Convert published CBraMod or LaBraM weights into a neurofm model directory "
                    "(config.json + model.safetensors + README.md) that neurofm.from_pretrained, "
                    "`neurofm probe` and `neurofm hub push` use like any other. SRC is a .pth/"
                    ".bin/.safetensors file, a directory holding one (e.g. braindecode's "
                    "re-hosted repos), or a Hub repo id.")
    parser.add_argument("source_model", choices=("cbramod", "labram"), metavar="MODEL",
                        help="cbramod (-> cbramod_base) or labram (-> labram_base)")
    parser.add_argument("src", metavar="SRC", help="published weights")
    parser.add_argument("out_dir", metavar="OUT_DIR", help="directory to write")
    add_revision_flag(parser, "SRC")
    parser.add_argument("--n-heads", type=int, default=None,
                        help="attention heads (default: CBraMod 8; LaBraM read from the weights)")
    parser.add_argument("--allow-global", dest="allow_globals", action="append", default=[],
                        metavar="MODULE.NAME",
                        help="a Python object the .pth file names besides tensors (e.g. "
                             "argparse.Namespace: training arguments saved with the weights) "
                             "that is read as an inert stand-in running nothing; only the "
                             "tensors are used (repeatable)")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into OUT_DIR although it holds files neurofm did not "
                             "write (config.json, model.safetensors and README.md are "
                             "replaced, other files kept)")
    parser.set_defaults(func=run_convert)


def run_convert(args) -> int:
    from neurofm.hub.convert_cbramod import convert_cbramod
    from neurofm.hub.convert_labram import convert_labram

    options = {"inert_globals": args.allow_globals, "overwrite": args.overwrite,
               "revision": args.revision}
    if args.source_model == "cbramod":
        model = convert_cbramod(args.src, args.out_dir, n_heads=args.n_heads or 8, **options)
    else:
        model = convert_labram(args.src, args.out_dir, n_heads=args.n_heads, **options)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"Wrote {model.model_name} ({n_params:,} parameters) to {args.out_dir}; load it with "
          f"neurofm.from_pretrained({args.out_dir!r}).")
    return 0
