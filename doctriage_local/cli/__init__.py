"""The ``doctriage`` command: run the pipeline on this machine (moto + the Datalab emulator).

One module per subcommand, each with ``add_parser(sub)`` and ``run(args)``:

- ``demo``: the bundled samples end to end;  ``run FILE...``: yours (``--json``: the records);
- ``up``: the local stack served on 127.0.0.1 for the AWS CLI and SDKs until stopped;
- ``invoke FUNCTION --event FILE``: one handler on a running ``up`` (``sam local invoke``
  without Docker);
- ``reprocess``: failed documents through the pipeline again;
- ``review``: a page on 127.0.0.1 to clear the review queue (the page: doctriage_local/review/).

``main`` builds the parser from them (``main.main`` is the ``doctriage`` entry point);
``options`` holds what they share (validators, ``--port``/``--time-scale``/... helpers, the
``up`` addresses); ``documents`` uploads files to a local stack and waits for their records.
Progress goes to stderr; results go to stdout. This file imports nothing, so ``options`` is
cheap to import elsewhere (the emulator's own command line uses it).
"""
