"""The warehouse: table definitions, migrations and the bulk upsert every loader goes through.

The package imports none of its modules, so that `result` comes without SQLAlchemy.
"""
