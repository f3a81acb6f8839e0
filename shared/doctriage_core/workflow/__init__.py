"""The workflow, one module per step of the state machine (statemachine/document_pipeline.asl.json).

``intake`` (the SQS message -> uploads, and the intake policy) -> ``submit`` (Datalab, then
StartExecution) -> ``poll`` (the Check Extraction loop) -> ``finish`` (Evaluate and the failure
path: the record, the review queue). ``state`` types what Step Functions passes between them.
The steps receive adapters ready-made (``ports`` names what they need); nothing here creates a
client or reads the environment.
"""
