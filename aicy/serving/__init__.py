"""Use cases, one module per API: auth -> route -> (admit -> reserve) -> call -> translate -> (meter)."""
