"""``slipway``: the operator's command line for a deployed Slipway (DESIGN.md "Operator CLI").

It talks to Slipway's REST API with SigV4 from the caller's usual AWS credentials (botocore's
credential chain), never ships to Lambda, and imports nothing from ``chalicelib``.

    main.py     arguments, subcommands, exit codes
    api.py      where the API is (--url / --stack), signing, one request, errors by meaning
    render.py   what a person reads: tables, the timeline, colours on a TTY only
    errors.py   the one exception root, each error carrying its exit code
"""
