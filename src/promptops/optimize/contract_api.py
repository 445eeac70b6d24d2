"""Seed 004 contract routes of PromptOpt: ``POST /api/prompt/generate`` and ``POST /api/prompt/refine``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from promptops.auth.deps import require
from promptops.auth.principal import Principal
from promptops.governance.rbac import Permission as P
from promptops.idempotency import idempotent
from promptops.optimize import generate as generating
from promptops.optimize import refine as refining
from promptops.optimize.schemas import (
    PromptCandidateList,
    PromptGenerationRequest,
    PromptRefineRequest,
    PromptRefineResult,
)
from promptops.runtime import runtime_of

contract_router = APIRouter(prefix="/api/prompt", tags=["promptopt contract"])
Optimizer = Annotated[Principal, Depends(require(P.PROMPT_OPTIMIZE))]


@contract_router.post(
    "/generate",
    status_code=201,
    response_model=PromptCandidateList,
    summary="Generate prompt candidates, scored and saved as draft versions (seed 004 PromptGenerationRequest)",
)
@idempotent
async def generate(
    body: PromptGenerationRequest, request: Request, principal: Optimizer
) -> PromptCandidateList:
    return await generating.generate(runtime_of(request), principal, body)


@contract_router.post(
    "/refine",
    status_code=201,
    response_model=PromptRefineResult,
    summary="Refine a prompt version from feedback; saves the result as a new version with lineage",
)
@idempotent
async def refine(body: PromptRefineRequest, request: Request, principal: Optimizer) -> PromptRefineResult:
    return await refining.refine(runtime_of(request), principal, body)
