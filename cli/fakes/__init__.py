"""Local fakes of the vendors Shouwang sends through: real HTTP servers on 127.0.0.1 for tests and demos."""
