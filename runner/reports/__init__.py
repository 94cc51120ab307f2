"""Reports of stored runs: what a run did, read from the state (:mod:`runner.reports.model`),
and that written as JUnit XML (:mod:`runner.reports.junit`) or as GitHub-flavoured markdown
(:mod:`runner.reports.markdown`)."""
