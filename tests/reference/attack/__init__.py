"""The independent attacker on the published tables (issue 16): each table family read
again from the row-level data of a run (`income`: the income tables and Table 2/B3;
`claims`: the life table, register counts, FK registrations, GC001 timing, prior sick
days, spell lengths by FK registration and the attrition flow), and the linear programs
that bound every hidden count, one family at a time or all together (`lp`)."""
