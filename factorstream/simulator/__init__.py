"""The traffic simulator (``factorstream simulate``): a seeded organisation signing in
through the real verifiers, with switchable attack scenarios.

* :mod:`~factorstream.simulator.organisation`, :mod:`~factorstream.simulator.geography`,
  :mod:`~factorstream.simulator.behaviour` — the model (people, homes, habits);
* :mod:`~factorstream.simulator.episodes`, :mod:`~factorstream.simulator.scenarios` — what
  people and attackers do, step by step; :mod:`~factorstream.simulator.schedule` runs the
  steps in time order;
* :mod:`~factorstream.simulator.ceremonies` (real verifiers) and
  :mod:`~factorstream.simulator.fast` (events only) carry the steps out;
* :mod:`~factorstream.simulator.run` and :mod:`~factorstream.simulator.driver` wire a run;
  :mod:`~factorstream.simulator.output` holds the sinks and the stream digest.
"""
