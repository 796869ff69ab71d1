"""Query strings: the grammar (text → typed AST) and the planner (AST → DynamoDB access path)."""
