"""scheduled releases: a file's release_at; the place a download drew at its release

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("files", sa.Column("release_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("downloads", sa.Column("place_drawn", sa.Integer(), nullable=True))


def downgrade():
    op.drop_column("downloads", "place_drawn")
    op.drop_column("files", "release_at")
