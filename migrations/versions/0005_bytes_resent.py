"""a download's bytes sent more than once (a resume from before what the client had)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("downloads", sa.Column("bytes_resent", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade():
    op.drop_column("downloads", "bytes_resent")
