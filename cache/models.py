from __future__ import annotations

from django.db import models
from pgvector.django import HnswIndex, VectorField

EMBEDDING_DIMENSIONS = 384  # all-MiniLM-L6-v2


class SemanticEntry(models.Model):
    """One cached answer, found by the meaning of its prompt. The gateway reads and writes
    this table with raw SQL on its own connection pool (gateway/hotpath/semantic.py); the ORM
    model owns the schema, the size accounting and eviction."""

    # SHA-256 of everything that must match exactly: scope, model, parameters and the
    # conversation before the last user turn
    partition = models.CharField(max_length=64, db_index=True)
    model = models.CharField(max_length=128)
    key_id = models.BigIntegerField(null=True)
    prompt = models.TextField(help_text="The embedded text: the last user turn.")
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS)
    completion = models.JSONField(help_text="The upstream's answer, OpenAI-shaped.")
    cost = models.DecimalField(max_digits=14, decimal_places=8, default=0, help_text="What the answer cost upstream.")
    size_bytes = models.IntegerField(default=0)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    last_hit_at = models.DateTimeField(null=True)
    hits = models.IntegerField(default=0)

    class Meta:
        indexes = [
            HnswIndex(name="semantic_entry_embedding", fields=["embedding"], m=16, ef_construction=200,
                      opclasses=["vector_cosine_ops"]),
        ]
