"""doctriage_core: the Lambda layer's package.

Rooms: ``domain/`` is pure logic (scoring, poll policy, citations, records: no AWS, no HTTP);
``adapters/`` talk to the outside (Datalab over httpx, S3/DynamoDB/SQS/Step Functions over boto3);
``workflow/`` runs one step of the state machine each (intake, submit, poll, finish) with the
adapters ``ports`` describes; ``runtime`` wires them for the handlers; ``config`` reads each
function's settings; ``errors`` holds every exception class the state machine can name.
"""
