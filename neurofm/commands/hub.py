"""``neurofm hub push DIR REPO_ID``: publish a model directory on the Hugging Face Hub."""

from __future__ import annotations

import json


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "hub",
        help="Share models on the Hugging Face Hub (neurofm hub push DIR REPO_ID).",
        description="Publish neurofm model and tokenizer directories on the Hugging Face Hub. "
                    "Log in first with `hf auth login` or set HF_TOKEN.")
    sub = parser.add_subparsers(dest="hub_command", metavar="ACTION", required=True)
    push = sub.add_parser(
        "push",
        help="Upload config.json, model.safetensors and README.md of DIR to REPO_ID.",
        description="Check DIR (a directory written by save_pretrained or `neurofm convert`), "
                    "write a model card README.md when it has none, create REPO_ID if needed "
                    "and upload the files in one commit.")
    push.add_argument("directory", metavar="DIR", help="model directory")
    push.add_argument("repo_id", metavar="REPO_ID", help="Hub repository, 'org/name'")
    push.add_argument("--private", action="store_true", help="create the repo as private")
    push.add_argument("--revision", default=None, help="branch to commit to (default main)")
    push.add_argument("--message", default=None, help="commit message")
    push.add_argument("--create-pr", action="store_true",
                      help="open a pull request instead of committing")
    push.add_argument("--token", default=None, help="Hub token (default: logged-in token)")
    push.add_argument("--intended-use", default=None, help="model card: intended use")
    push.add_argument("--training-data", default=None, help="model card: training data")
    push.add_argument("--objective", default=None, help="model card: pretraining objective")
    push.add_argument("--metrics", default=None, metavar="JSON",
                      help='model card: metrics as JSON, e.g. \'{"TUAB": {"balanced_accuracy": '
                           '0.79}}\'')
    push.add_argument("--license", default=None, help="model card: license (e.g. mit)")
    push.set_defaults(func=run_push)


def run_push(args) -> int:
    from neurofm.hub.push import push_to_hub

    card = {k: getattr(args, k) for k in ("intended_use", "training_data", "objective",
                                          "license") if getattr(args, k)}
    if args.metrics:
        try:
            card["metrics"] = json.loads(args.metrics)
        except json.JSONDecodeError as err:
            raise ValueError(f"--metrics is not valid JSON ({err}); e.g. "
                             '\'{"TUAB": {"balanced_accuracy": 0.79}}\'.') from None
    url = push_to_hub(args.directory, args.repo_id, token=args.token,
                      private=args.private or None, revision=args.revision,
                      commit_message=args.message, create_pr=args.create_pr, card_fields=card)
    print(f"Uploaded {args.directory} to {args.repo_id}: {url}")
    return 0
