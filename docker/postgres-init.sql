-- The warehouse lives beside Dagster's own storage on the same server, in its own database.
CREATE DATABASE warehouse OWNER dagster;
