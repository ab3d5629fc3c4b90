"""Request bodies of `POST /predict/{model}`: one diamond, or `{"rows": [...]}` of them."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints

# Numbers must be JSON numbers (no "1.2" strings, no booleans); null is a missing value.
Number = Annotated[float, Strict()] | None
Category = Annotated[str, Strict(), StringConstraints(max_length=64)] | None
RequestId = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class DiamondRow(BaseModel):
    """One diamond to price. Every feature must be present; null marks a missing value."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    request_id: RequestId | None = Field(
        default=None, description="your id for this row; a uuid4 is made up when absent"
    )
    carat: Number = Field(description="weight in carats", examples=[0.31])
    cut: Category = Field(description="Fair, Good, Very Good, Premium or Ideal", examples=["Ideal"])
    color: Category = Field(description="D (best) to J (worst)", examples=["E"])
    clarity: Category = Field(description="I1, SI2, SI1, VS2, VS1, VVS2, VVS1 or IF", examples=["SI2"])
    depth: Number = Field(description="total depth percentage", examples=[61.5])
    table: Number = Field(description="width of the top relative to the widest point", examples=[55.0])
    x: Number = Field(description="length in mm", examples=[4.3])
    y: Number = Field(description="width in mm", examples=[4.31])
    z: Number = Field(description="depth in mm", examples=[2.65])


class PredictBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rows: list[DiamondRow] = Field(min_length=1)


EXAMPLE_ROW: dict[str, Any] = {
    "carat": 0.31,
    "cut": "Ideal",
    "color": "E",
    "clarity": "SI2",
    "depth": 61.5,
    "table": 55.0,
    "x": 4.3,
    "y": 4.31,
    "z": 2.65,
}


def request_body_doc() -> dict[str, Any]:
    """OpenAPI `requestBody` for the prediction route (the route parses its body itself)."""
    row = DiamondRow.model_json_schema()
    batch = {
        "type": "object",
        "title": "PredictBatch",
        "required": ["rows"],
        "additionalProperties": False,
        "properties": {"rows": {"type": "array", "minItems": 1, "items": row}},
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"oneOf": [row, batch]},
                    "examples": {
                        "one row": {"value": EXAMPLE_ROW},
                        "many rows": {"value": {"rows": [EXAMPLE_ROW, {**EXAMPLE_ROW, "carat": 1.2}]}},
                    },
                }
            },
        }
    }
