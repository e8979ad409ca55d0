"""The names of the tags augsweep writes on MLflow runs, in one place: every module that writes
or reads one uses these, so a name is spelt once."""

ROLE = "augsweep.role"  # "sweep" on a parent run, "job" on a job's run
ROLE_SWEEP, ROLE_JOB = "sweep", "job"
OVERRIDES = "augsweep.overrides"  # the command line's overrides (a parent: and its grid)
COMMAND = "augsweep.command"  # a parent run: the command that started the sweep
SWEEP_DIR = "augsweep.sweep_dir"  # a parent run: its hydra.sweep.dir
ERROR = "augsweep.error"  # why a run ended FAILED
KILLED = "augsweep.killed"  # why a run ended KILLED
# who runs a run and whether it still lives (src/tracking/resume.py)
HOST, PID, PID_STARTED, HEARTBEAT = (
    "augsweep.host",
    "augsweep.pid",
    "augsweep.pid_started",
    "augsweep.heartbeat",
)
# a parent run: one tag per job it did not train, the value the run it reused
SKIPPED_PREFIX = "augsweep.skipped."
STUDY, STUDY_ID = "augsweep.study", "augsweep.study_id"  # a study's grid sweep: "<study>/<grid>"
ADAPTIVE_PREFIX = "augsweep.adaptive."  # an adaptive sweep's parent: max_seeds, round<r>, ...
FOLD, LOG_MODEL = "augsweep.fold", "augsweep.log_model"  # a logged Keras model
SPLIT, CLASSES, MODALITY = "augsweep.split", "augsweep.classes", "augsweep.modality"  # inputs
CONFIG_HASH = "config_hash"  # a job's run: tracking.config_hash of its config
PARENT = "mlflow.parentRunId"  # MLflow's own: the parent run of a child
