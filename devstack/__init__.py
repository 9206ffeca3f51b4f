"""Slipway's devstack: the whole flow on one machine, with the app's very own handlers.

Dev-only: nothing in ``app.py`` or ``chalicelib/`` imports this package and it never ships to Lambda.

    cli.py / __main__.py  ``python -m devstack serve|demo`` (``make local`` / ``make demo``)
    stack.py              everything below, started and stopped as one
    aws.py                embedded AWS: moto's server in-process on loopback, provisioned from config
    ecs_emulator.py       ECS EMULATION of what moto lacks (task exits, rollouts, ECS events)
    events.py             event plane: EventBridge rules, SQS worker, scheduled reconciler, ECR push
    server.py / control.py  one HTTP server: ``/_devstack/*`` control endpoints + the app's REST API
    links.py              find approval links in what the Slack stand-in received
    timeline.py / demo.py readable timelines; the demo scenarios
    standins/             Slack and GitHub HTTP stand-ins
"""
