"""Human review of needs_review documents: a review-queue consumer and a page on 127.0.0.1.

``doctriage review`` takes one message at a time from the review queue, keeps it invisible to
other consumers while a reviewer has the document open (a heartbeat extends its visibility
timeout), shows the document's pages with the flagged fields' boxes drawn over them, and stores
the reviewer's decision on the record under ``review`` before it deletes the message. Duplicate
messages for a document that already has a decision are acknowledged without a second one.

- ``decision``: which fields need a look, and a submitted form -> the ``review`` object
- ``consumer``: the SQS side (long polling, heartbeat, delete after store, duplicates)
- ``render``: document pages -> PNG (pypdfium2) without an imaging library
- ``page``: the HTML (plain HTML + ``static/review.js`` + ``static/review.css``)
- ``server``: the stdlib HTTP server that ties them together
- ``connect``: which queue and table (a local stack, ``doctriage up``'s, or a deployed one)

The ``doctriage review`` command itself is doctriage_local/cli/review.py.
"""
