"""files in object storage: the store's ETag, the registered Last-Modified, withdrawal

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("files", sa.Column("etag", sa.String(255), nullable=True))
    op.add_column("files", sa.Column("modified_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("files", sa.Column("withdrawn", sa.Text(), nullable=True))


def downgrade():
    op.drop_column("files", "withdrawn")
    op.drop_column("files", "modified_at")
    op.drop_column("files", "etag")
