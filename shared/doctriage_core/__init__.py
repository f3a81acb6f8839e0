"""doctriage_core: the Lambda layer's package.

Rooms: ``domain/`` is pure logic (scoring, poll policy, citations, records: no AWS, no HTTP);
``adapters/`` talk to the outside (Datalab over httpx, S3/DynamoDB/SQS/Step Functions over boto3);
``pipeline`` runs one step of the workflow with injected adapters; ``config`` reads settings;
``errors`` holds every exception class the state machine can name.
"""
