"""What users of a local stack do with it: put schemas, upload documents, read records, the
review queue and the state machine's executions. Mixed into LocalStack.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

from doctriage_local.stack.options import StackOptions


class StackOperations:
    """Needs ``client``, ``physical``, ``options``, ``endpoint_url`` and ``datalab_api_url``."""

    options: StackOptions
    physical: dict[str, str]
    endpoint_url: str | None
    datalab_api_url: str

    def client(self, service: str) -> Any:
        raise NotImplementedError

    @property
    def bucket(self) -> str:
        return self.physical["DocumentsBucket"]

    def put_schema(self, doc_type: str, schema: bytes | str | Path) -> None:
        body = schema.read_bytes() if isinstance(schema, Path) else schema
        self.client("s3").put_object(
            Bucket=self.bucket,
            Key=f"schemas/{doc_type}.json",
            Body=body,
            ContentType="application/json",
        )

    def upload(
        self,
        body: bytes | Path,
        doc_type: str,
        *,
        name: str | None = None,
        key: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Put a document under incoming/<doc_type>/; return its key, version and document_id."""
        from doctriage_core.domain.documents import document_id_for

        if isinstance(body, Path):
            name = name or body.name
            body = body.read_bytes()
        key = key or f"incoming/{doc_type}/{name}"
        response = self.client("s3").put_object(
            Bucket=self.bucket, Key=key, Body=body, Metadata=metadata or {}
        )
        version_id = response.get("VersionId")
        return {
            "key": key,
            "version_id": version_id,
            "document_id": document_id_for(self.bucket, key, version_id, response.get("ETag")),
        }

    def record(self, document_id: str) -> dict[str, Any] | None:
        from doctriage_core.adapters.aws import ResultsTable

        table = ResultsTable(
            self.physical["ResultsTable"],
            boto3.resource(
                "dynamodb", region_name=self.options.region, endpoint_url=self.endpoint_url
            ),
        )
        return table.get(document_id)

    def wait_for_records(
        self,
        document_ids: list[str],
        timeout: float = 120.0,
        on_record: Callable[[dict[str, Any]], None] | None = None,
        on_waiting: Callable[[list[str]], None] | None = None,
        waiting_every: float = 0.5,
    ) -> dict[str, dict[str, Any]]:
        """Block until every document has its terminal record (or the timeout passes).

        ``on_record`` gets each record as it comes; ``on_waiting`` the document ids still
        without one, every ``waiting_every`` seconds (doctriage_local.stack.watch observes them).
        """
        done: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        next_waiting = time.monotonic()
        while len(done) < len(set(document_ids)) and time.monotonic() < deadline:
            for document_id in document_ids:
                if document_id in done:
                    continue
                record = self.record(document_id)
                if record is not None:
                    done[document_id] = record
                    if on_record:
                        on_record(record)
            pending = [d for d in document_ids if d not in done]
            if on_waiting and pending and time.monotonic() >= next_waiting:
                on_waiting(pending)
                next_waiting = time.monotonic() + waiting_every
            time.sleep(0.05)
        return done

    def review_messages(self, *, delete: bool = False, max_messages: int = 100) -> list[dict]:
        """What is on the review queue (left there unless ``delete``)."""
        sqs = self.client("sqs")
        url = self.physical["ReviewQueue"]
        bodies: list[dict] = []
        handles: list[str] = []
        while len(bodies) < max_messages:
            messages = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                break
            for message in messages:
                bodies.append(json.loads(message["Body"]))
                handles.append(message["ReceiptHandle"])
        for handle in handles:
            if delete:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)
            else:
                sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0
                )
        return bodies

    def executions(self) -> list[dict[str, Any]]:
        sfn = self.client("stepfunctions")
        pages = sfn.get_paginator("list_executions").paginate(
            stateMachineArn=self.physical["DocumentStateMachine"]
        )
        return [execution for page in pages for execution in page["executions"]]

    def _execution_arn(self, document_id: str) -> str:
        for execution in self.executions():
            if execution["name"] == document_id:
                return str(execution["executionArn"])
        raise LookupError(f"no execution named {document_id}")

    def finished_execution(self, document_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """The execution named ``document_id`` (as DescribeExecution gives it) once it has ended.

        Waits until it exists and is no longer RUNNING; raises TimeoutError after ``timeout``.
        """
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout
        last_status: str | None = None
        while True:
            for execution in self.executions():
                if execution["name"] == document_id:
                    last_status = execution["status"]
                    if last_status != "RUNNING":
                        described: dict[str, Any] = sfn.describe_execution(
                            executionArn=execution["executionArn"]
                        )
                        return described
            if time.monotonic() > deadline:
                state = "still RUNNING" if last_status else "never started"
                raise TimeoutError(
                    f"execution {document_id} did not finish within {timeout} s ({state})"
                )
            time.sleep(0.05)

    def execution_history(self, document_id: str) -> list[dict[str, Any]]:
        """Every event of the execution named ``document_id``, following nextToken."""
        return self.history(self._execution_arn(document_id))

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        """Every event of an execution, following nextToken."""
        sfn = self.client("stepfunctions")
        kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
        events: list[dict[str, Any]] = []
        while True:
            page = sfn.get_execution_history(**kwargs)
            events.extend(page["events"])
            if not page.get("nextToken"):
                return events
            kwargs["nextToken"] = page["nextToken"]

    def states_entered(self, document_id: str) -> list[str]:
        """The names of the states the execution named ``document_id`` entered, in order."""
        return [
            event["stateEnteredEventDetails"]["name"]
            for event in self.execution_history(document_id)
            if "stateEnteredEventDetails" in event
        ]

    def info(self) -> dict[str, Any]:
        return {
            "endpoint_url": self.endpoint_url,
            "region": self.options.region,
            "bucket": self.bucket,
            "intake_queue_url": self.physical["IntakeQueue"],
            "review_queue_url": self.physical["ReviewQueue"],
            "results_table": self.physical["ResultsTable"],
            "state_machine_arn": self.physical["DocumentStateMachine"],
            "datalab_api_url": self.datalab_api_url,
        }
