"""list_models pages with limit and cursor like GET /models, and says when a model's source run was deleted
(in-process: the MCP wire itself is tested in test_server.py)."""

from __future__ import annotations

import pytest
from mcp.server.mcpserver.exceptions import ToolError

from tests.client.test_models_page import ended_run, insert
from tests.client.test_models_page import save as save  # the fixture
from trainops.client import LocalTrainOps
from trainops.mcp.server import TrainOpsTools, _Facade
from trainops.service.bootstrap import open_service
from trainops.settings import Settings
from trainops.store.models import ModelStore


def test_list_models_pages_and_marks_a_deleted_source(settings: Settings, save: ModelStore) -> None:
    with LocalTrainOps(open_service(settings), settings=settings) as ops:
        gone = ended_run(ops)
        insert(save, 0, source=gone)
        insert(save, 1)
        insert(save, 2)
        ops.delete_operation(gone)
        tools = TrainOpsTools(_Facade(lambda: ops), read_only=True)

        first = tools.list_models(limit=2)
        rest = tools.list_models(limit=2, cursor=first["next_cursor"])
        everything = tools.list_models()

    assert [model["model_name"] for model in first["models"]] == ["model-2", "model-1"]
    assert first["count"] == 2 and first["next_cursor"]
    assert [model["model_name"] for model in rest["models"]] == ["model-0"] and rest["next_cursor"] is None
    assert rest["models"][0]["source_operation"] == gone and rest["models"][0]["source_deleted"] is True
    assert everything["count"] == 3 and everything["next_cursor"] is None


def test_list_models_refuses_a_cursor_without_its_limit(settings: Settings, save: ModelStore) -> None:
    with LocalTrainOps(open_service(settings), settings=settings) as ops:
        insert(save, 0)
        insert(save, 1)
        tools = TrainOpsTools(_Facade(lambda: ops), read_only=True)
        cursor = tools.list_models(limit=1)["next_cursor"]
        with pytest.raises(ToolError, match="send the limit of the first page too"):
            tools.list_models(cursor=cursor)
