"""Which mutations a GraphQL request would run, read with graphql-core (Dagster's own parser).

The operation that runs is the one `operationName` names, or the only one in the document. A
document that does not parse runs nothing, so it is let through for Dagster to refuse.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError, OperationType, parse
from graphql.language import FieldNode, OperationDefinitionNode

# Variables that say what a change is about; anything else (configs, tokens) stays out of the audit.
TARGET_KEYS = frozenset({
    "jobName", "pipelineName", "repositoryName", "repositoryLocationName", "runId", "runIds", "parentRunId",
    "scheduleName", "sensorName", "partitionsDefName", "partitionKey", "partitionKeys", "partitionNames",
    "backfillId", "assetKeys", "path", "cursor", "key", "limit",
})


def mutations_in(query: Any, operation_name: Any = None) -> list[str]:
    if not isinstance(query, str):
        return []
    try:
        document = parse(query)
    except GraphQLError:
        return []
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name:
        operations = [o for o in operations if o.name is not None and o.name.value == operation_name]
    elif len(operations) != 1:
        return [] if not operations else sorted({
            f.name.value for o in operations if o.operation == OperationType.MUTATION
            for f in o.selection_set.selections if isinstance(f, FieldNode)})  # ambiguous: judge them all
    return [
        f.name.value for o in operations if o.operation == OperationType.MUTATION
        for f in o.selection_set.selections if isinstance(f, FieldNode)
    ]


def target_of(variables: Any) -> dict[str, Any]:
    """The ids a mutation's variables name (job, run, schedule, sensor, partition), found at any depth."""
    found: dict[str, Any] = {}

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if k in TARGET_KEYS and isinstance(v, (str, int, list)) and k not in found:
                    found[k] = v
                else:
                    walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(variables)
    return found
