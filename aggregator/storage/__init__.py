"""Storage: the engine, the schema and the rows; applies what the floors above decide."""
