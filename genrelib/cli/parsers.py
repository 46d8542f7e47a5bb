"""The sub-commands of ``genrelib``: each with its options, checked as the command line is read
(:mod:`genrelib.cli.options`), and the function of its group module that runs it."""

from __future__ import annotations

from genrelib.audio import MIN_SECONDS
from genrelib.cli.app import cmd_app
from genrelib.cli.common import (
    STREAMED,
    add_scale_options,
    add_training_options,
)
from genrelib.cli.data import cmd_demo_data, cmd_features, cmd_scan
from genrelib.cli.inference import cmd_evaluate, cmd_personal_test, cmd_predict, cmd_serve
from genrelib.cli.notebooks import cmd_notebook, cmd_run_all
from genrelib.cli.options import COUNT, HOP, POSITIVE, SEED, existing, number, whole
from genrelib.cli.training import cmd_ensemble, cmd_sweep, cmd_train, cmd_train_default, cmd_train_reference


def add_commands(sub) -> None:
    """Add every command to the sub-parsers ``sub`` of :func:`genrelib.cli.run.build_parser`."""
    d = sub.add_parser("demo-data", help="generate synthetic GTZAN-shaped demo music")
    d.add_argument("out", help="folder to write <genre>/<genre>.000NN.wav into")
    d.add_argument("--per-genre", type=POSITIVE, default=30, help="tracks per genre (default 30)")
    d.add_argument(
        "--seconds",
        type=number(low=MIN_SECONDS),
        default=30.0,
        help=f"length of each track (>= {MIN_SECONDS:g}; default 30)",
    )
    d.add_argument("--seed", type=SEED, default=0, help="random seed (default 0)")
    d.add_argument(
        "--overlap",
        type=float,  # make_demo's check_overlap refuses what is not in [0, 1] (nan too), before any work
        default=None,
        metavar="X",
        help="how much the genres overlap, from 0 (distinct genres, clean production: easy) to 1 "
        "(crossover tracks, varied production); default 0.2, tuned so that genrelib's CNN families "
        "score 60-90%% per track",
    )
    d.add_argument(
        "--personal",
        type=COUNT,
        default=0,
        metavar="N",
        help="instead, write N longer 'personal' songs (1-3 min; mp3, flac, wav, ogg)",
    )
    d.set_defaults(func=cmd_demo_data)

    s = sub.add_parser("scan", help="count tracks per genre and list unreadable files")
    s.add_argument("root", help="data folder laid out <root>/<genre>/<file>")
    s.add_argument(
        "--full",
        action="store_true",
        help="decode every file to the end (as features and train do), not only its header: finds files "
        "that are cut short, silent or decode to NaN; slower (about 3 ms per 30 s wav, 15 ms per mp3)",
    )
    s.set_defaults(func=cmd_scan)

    f = sub.add_parser("features", help="extract features of a data folder (cached)")
    f.add_argument("root", help="data folder laid out <root>/<genre>/<file>")
    f.add_argument(
        "--kind",
        choices=["mfcc", "mel", "summary", "musicnn"],
        default=None,
        help="mfcc, mel, summary (the GTZAN table's 57 columns) or musicnn (pretrained embeddings and "
        "tags); default: the kind --family trains on, mfcc without --family. Given with --family, "
        "--kind wins (as notebook 02's kind and family parameters)",
    )
    f.add_argument(
        "--family",
        choices=["seed_cnn", "mel_cnn", "crnn", "summary", "musicnn"],
        default=None,
        help="extract the kind this model family trains on (seed_cnn: mfcc; mel_cnn, crnn: mel; "
        "summary; musicnn), the features `genrelib train --model FAMILY` uses",
    )
    f.add_argument(
        "--out",
        default=None,
        help="output file: .csv for summary and musicnn, else .npz (needed unless --store is given)",
    )
    f.add_argument("--n-mfcc", type=POSITIVE, default=16, help="MFCCs per frame (mfcc kind; default 16)")
    f.add_argument("--n-mels", type=POSITIVE, default=128, help="mel bands (mel kind; default 128)")
    f.add_argument("--jobs", type=POSITIVE, default=None, help="worker processes (default: all CPUs)")
    f.add_argument(
        "--cache-dir", default=None, help="feature cache folder (default $GENRELIB_CACHE or ~/.cache/genrelib)"
    )
    f.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    f.add_argument(
        "--store",
        default=None,
        metavar="DIR",
        help="write the features as a sharded Parquet store under DIR (DIR/<kind>-<key>, the cache's "
        "key), shard by shard as they are computed; a rerun keeps finished, verified shards and "
        "computes the rest (docs/scaling.md). For data that does not fit in memory",
    )
    f.add_argument(
        "--shard-size",
        type=POSITIVE,
        default=None,
        metavar="N",
        help="tracks per shard of --store (default 64; a store keeps the size it was started with)",
    )
    f.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="extract on a Dask cluster: tcp://HOST:8786 (a running `dask scheduler`; workers need "
        "genrelib, the audio and the store folder at the same paths), or local:N (N worker "
        "processes here). Default: local processes",
    )
    f.add_argument(
        "--map",
        default=None,
        metavar="FILE.png",
        help="also draw a 2-D map of the features, one point per track, coloured by genre",
    )
    f.add_argument(
        "--map-method",
        choices=["pca", "tsne"],
        default=None,
        help="how --map reduces the features to 2-D: pca (default) or tsne",
    )
    f.set_defaults(func=cmd_features)

    t = sub.add_parser("train", help="train a model, evaluate it on held-out tracks, log and register it")
    t.add_argument("data", help="data folder laid out <root>/<genre>/<file>")
    t.add_argument(
        "--model", required=True, choices=["seed_cnn", "mel_cnn", "crnn", "summary", "musicnn"], help="model family"
    )
    t.add_argument("--epochs", type=POSITIVE, default=30, help="most epochs (early stopping on validation loss)")
    t.add_argument(
        "--split",
        choices=["random", "gtzan-ff"],
        default=None,
        help="random (default): stratified by genre, by track; gtzan-ff: GTZAN's fault-filtered split",
    )
    t.add_argument(
        "--split-file",
        default=None,
        type=existing(),
        metavar="FILE",
        help="your own train/valid/test lists, in the format of the shipped GTZAN lists (lines like "
        "blues/blues.00012.wav): a folder holding train*.txt, valid*.txt (or val*.txt) and test*.txt; "
        "or train.txt,valid.txt,test.txt; or one file of '<part> <track>' lines. Listed tracks "
        "missing from DATA are reported, DATA's tracks in no list are left out",
    )
    t.add_argument("--seed", type=SEED, default=42, help="seeds the random split, weight init and data order")
    t.add_argument("--patience", type=COUNT, default=5, help="early-stopping patience in epochs")
    t.add_argument("--batch-size", type=POSITIVE, default=32, help="training batch size")
    t.add_argument("--class-weights", action="store_true", help="weight genres inversely to their frequency")
    t.add_argument("--jobs", type=POSITIVE, default=None, help="feature-extraction processes (default: all CPUs)")
    add_scale_options(t, f"train from it (with --cv: every fold){STREAMED}")
    t.add_argument("--no-register", action="store_true", help="do not register the model")
    t.add_argument(
        "--promote",
        action="store_true",
        help="move the family's registry alias (genre-classifier@<family>) to this version even if it "
        "scores lower than the holder or was trained on other data",
    )
    t.add_argument(
        "--cv",
        type=whole(low=2),
        default=None,
        metavar="K",
        help="instead of one split: K-fold cross-validation by track (stratified), mean and spread of "
        "every metric, each fold a nested MLflow run; nothing is registered",
    )
    t.add_argument("--repeats", type=POSITIVE, default=1, help="with --cv: repeat with R different shuffles")
    t.add_argument(
        "--group",
        default=None,
        metavar="blocks:N|ff-runs",
        help="with --cv on GTZAN file names: keep groups of tracks in one part of every fold, an "
        "approximation of artist groups (GTZAN has no artist labels here): blocks:N = N consecutive "
        "numbers of a genre (neighbours often share an artist); ff-runs = runs of consecutive "
        "numbers the fault-filtered lists put in one part (whole artists, if contiguous)",
    )
    t.add_argument(
        "--force",
        action="store_true",
        help="train even on a split that cannot give an honest test result (a genre with no training "
        "or test tracks, a test part under 10 tracks or 2 per genre: gtzan-ff or a split file on "
        "partial data)",
    )
    add_training_options(t)
    t.set_defaults(func=cmd_train)

    from genrelib.training import OBJECTIVE, SEARCHABLE

    sw = sub.add_parser(
        "sweep",
        help="search hyper-parameters on the validation tracks (Optuna), then train and test the best once",
        description="Each trial trains the family on the training tracks and is scored on the validation tracks "
        f"({OBJECTIVE}, lower is better); each is a nested MLflow run under one parent run. The best "
        "configuration is then trained again, evaluated once on the test tracks and registered.",
    )
    sw.add_argument("data", help="data folder laid out <root>/<genre>/<file>")
    sw.add_argument(
        "--model", required=True, choices=["seed_cnn", "mel_cnn", "crnn", "summary", "musicnn"], help="model family"
    )
    sw.add_argument("--trials", type=POSITIVE, required=True, help="number of trials")
    keras_names = ", ".join(n for n, s in SEARCHABLE.items() if "mel_cnn" in s.families)
    sw.add_argument(
        "--param",
        action="append",
        default=None,
        metavar="NAME=SPEC",
        help="a parameter to search: NAME=v1,v2,... (choices) or NAME=lo:hi (a range; log scale for "
        "learning_rate, l2, logreg_c); repeat for several. Names: Keras families "
        f"{keras_names}; seed_cnn also l2; summary and musicnn logreg_c. Without --param: the "
        "family's default space (learning rate, batch size, dropout, filters, mixup, masks; l2 for "
        "seed_cnn; logreg_c for summary and musicnn)",
    )
    sw.add_argument("--no-prune", action="store_true", help="let every trial run to the end (no median pruner)")
    sw.add_argument(
        "--epochs", type=POSITIVE, default=30, help="most epochs per trial (early stopping on validation loss)"
    )
    sw.add_argument("--split", choices=["random", "gtzan-ff"], default=None, help="as for train (default: random)")
    sw.add_argument(
        "--split-file",
        default=None,
        type=existing(),
        metavar="FILE",
        help="your own train/valid/test lists, as for train",
    )
    sw.add_argument("--seed", type=SEED, default=42, help="seeds the split, the sampler and every trial")
    sw.add_argument("--patience", type=COUNT, default=5, help="early-stopping patience in epochs")
    sw.add_argument("--batch-size", type=POSITIVE, default=32, help="batch size when not searched")
    sw.add_argument("--class-weights", action="store_true", help="weight genres inversely to their frequency")
    sw.add_argument("--jobs", type=POSITIVE, default=None, help="feature-extraction processes (default: all CPUs)")
    add_scale_options(sw, f"run every trial and the retrained best from it{STREAMED}")
    sw.add_argument("--no-register", action="store_true", help="do not register the best model")
    sw.add_argument("--force", action="store_true", help="as for train")
    add_training_options(sw)
    sw.set_defaults(func=cmd_sweep)

    e = sub.add_parser("evaluate", help="segment and track metrics of a model on a labelled folder")
    e.add_argument("model", help="model: reference, a folder, runs:/<id>/model, genre-classifier/<version> or @alias")
    e.add_argument("data", help="labelled folder <root>/<genre>/<file>")
    e.add_argument(
        "--part",
        choices=["train", "valid", "test", "all"],
        default=None,
        help="evaluate only the tracks of DATA in this part of the model's own split (its recorded "
        "track lists; DATA is never re-split), or all of them. Default: the test part when DATA holds "
        "tracks the model trained or was validated on, else every track; the output says which",
    )
    e.add_argument("--jobs", type=POSITIVE, default=None, help="feature-extraction processes (default: all CPUs)")
    add_scale_options(e, "predict shard by shard, never holding the features in memory (not for ensembles)")
    e.add_argument("--no-log", action="store_true", help="do not log the evaluation to MLflow")
    e.set_defaults(func=cmd_evaluate)

    en = sub.add_parser(
        "ensemble",
        help="combine trained models (any families) into one; compare it with its members on the same tracks",
        description="The ensemble averages its members' log-probabilities per 30 s window and per track, each member "
        "on its own features; it is saved, logged and registered like any model (alias @ensemble) and can "
        "be used wherever a model can (evaluate, predict, personal-test, serving, notebooks 04 and 05).",
    )
    en.add_argument(
        "models",
        nargs="+",
        metavar="MODEL",
        help="two or more models: reference, a folder, runs:/<id>/model, genre-classifier/<version> or @alias",
    )
    en.add_argument(
        "--weights",
        nargs="+",
        type=number(low=0),
        default=None,
        metavar="W",
        help="one non-negative weight per model, in order (default: equal)",
    )
    en.add_argument(
        "--data",
        default=None,
        help="labelled folder: evaluate the members and the ensemble on the same tracks of it and print the comparison",
    )
    en.add_argument(
        "--part",
        choices=["train", "valid", "test", "all"],
        default="test",
        help="with --data: the part of the split to evaluate on (default test: the tracks in every "
        "member's test part and in none's training or validation part); all: every track of DATA",
    )
    en.add_argument("--out", default=None, help="also save the ensemble's model folder here")
    en.add_argument("--jobs", type=POSITIVE, default=None, help="feature-extraction processes (default: all CPUs)")
    en.add_argument("--no-log", action="store_true", help="do not log to MLflow (nor register)")
    en.add_argument("--no-register", action="store_true", help="do not register the ensemble")
    en.add_argument(
        "--promote",
        action="store_true",
        help="move genre-classifier@ensemble to this version even if it scores lower than the holder or "
        "was evaluated on other data",
    )
    en.set_defaults(func=cmd_ensemble)

    r = sub.add_parser("train-reference", help="train the summary model on a GTZAN feature table (fault-filtered)")
    r.add_argument(
        "--table", required=True, type=existing("file"), help="features_30_sec.csv of the Kaggle GTZAN download"
    )
    r.add_argument("--out", default=None, help="folder to save the model and its model card into")
    r.add_argument("--seed", type=SEED, default=42, help="seeds the model selection")
    r.add_argument("--no-log", action="store_true", help="do not log to MLflow")
    r.set_defaults(func=cmd_train_reference)

    d = sub.add_parser(
        "train-default",
        help="rebuild the default model (musicnn features + linear head) from audio, choosing C by grouped CV",
    )
    d.add_argument(
        "data", help="<genre>/<file> folder: the 153 real GTZAN tracks (../shared/data/gtzan/make_dev_folder.sh)"
    )
    d.add_argument(
        "--out", default=None, help="model folder to write (default: the package's own genrelib/data/default)"
    )
    d.add_argument("--table", default=None, help="also write the feature table (.npz) the shipped-model test reads")
    d.add_argument(
        "--folds", type=whole(low=2), default=5, help="grouped cross-validation folds (default: %(default)s)"
    )
    d.add_argument("--repeats", type=POSITIVE, default=3, help="cross-validation repeats (default: %(default)s)")
    d.add_argument(
        "--group", default="blocks:5", help="how tracks are grouped: blocks:N or ff-runs (default: %(default)s)"
    )
    d.add_argument("--seed", type=SEED, default=42, help="cross-validation seed (default: %(default)s)")
    d.add_argument("--jobs", type=POSITIVE, default=None, help="feature worker processes (default: all cores)")
    d.add_argument("--no-log", action="store_true", help="do not log to MLflow")
    d.set_defaults(func=cmd_train_default)

    model_help = (
        "model: default (the shipped default: musicnn + linear head), reference (the older summary model), "
        "a model folder, runs:/<id>/model, a run id, "
        "genre-classifier/<version> or genre-classifier@<alias>"
    )
    pr = sub.add_parser("predict", help="classify songs of any length (files or folders)")
    pr.add_argument("paths", nargs="+", help="audio files or folders (searched recursively)")
    pr.add_argument("--model", default=None, help=model_help)
    pr.add_argument("--top-k", type=POSITIVE, default=3, help="genres shown per song (default 3)")
    pr.add_argument("--timeline", action="store_true", help="also show every 30 s window")
    pr.add_argument(
        "--tags",
        type=COUNT,
        default=0,
        metavar="K",
        help="also show the K most probable musicnn tags (per window with --timeline), whatever model gives the genre",
    )
    pr.add_argument(
        "--tag-model",
        default="MSD_musicnn",
        help="the musicnn network that gives the tags (default MSD_musicnn: Last.fm tags)",
    )
    pr.add_argument("--hop", type=HOP, default=None, help="seconds between window starts (default 30)")
    pr.add_argument("--format", choices=["table", "json", "csv"], default="table", help="output format")
    pr.set_defaults(func=cmd_predict)

    ap = sub.add_parser(
        "app",
        help="a web page on this machine for classifying your own songs (upload or record; genres, timeline, tags)",
        description="Serves a local Gradio page: upload songs or record one, choose the model (the default or any "
        "registered alias or version of the tracking URI's registry), see each song's top genres, genre over time and "
        "musicnn tags, download the results as CSV or JSON. No sharing link, no analytics, nothing fetched from "
        "outside.",
    )
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface, your network)")
    ap.add_argument("--port", type=whole(low=1, high=65535), default=7860, help="port to listen on")
    ap.add_argument(
        "--model", default=None, help="the model chosen at first (default: the shipped default); " + model_help
    )
    ap.add_argument(
        "--max-upload-mb",
        type=number(low=0, low_open=True),
        default=300.0,
        help="largest upload the server accepts (MB)",
    )
    ap.add_argument(
        "--max-minutes", type=number(low=0, low_open=True), default=60.0, help="longest song the page classifies"
    )
    ap.set_defaults(func=cmd_app)

    pt = sub.add_parser("personal-test", help="classify a folder of your songs; score it if laid out <genre>/<song>")
    pt.add_argument("folder", type=existing("dir"))
    pt.add_argument("--model", default=None, help=model_help)
    pt.add_argument("--hop", type=HOP, default=None, help="seconds between window starts (default 30)")
    pt.add_argument("--tags", type=COUNT, default=0, metavar="K", help="also list the K most probable musicnn tags")
    pt.add_argument("--tag-model", default="MSD_musicnn", help="the musicnn network that gives the tags")
    pt.add_argument("--no-log", action="store_true", help="do not log to MLflow")
    pt.set_defaults(func=cmd_personal_test)

    sv = sub.add_parser(
        "serve", help="serve a model over REST (mlflow models serve): the shipped default when none is named"
    )
    sv.add_argument("model", nargs="?", default=None, help=model_help.replace("model: ", "", 1) + " (default: default)")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    sv.add_argument("--port", type=whole(low=1, high=65535), default=5001, help="port (default 5001)")
    sv.set_defaults(func=cmd_serve)

    nb = sub.add_parser("notebook", help="run one notebook headlessly with papermill, logged to MLflow")
    nb.add_argument(
        "name", choices=["01_eda", "02_features", "03_train", "04_evaluate", "05_personal_test", "06_compare"]
    )
    nb.add_argument("-p", nargs=2, action="append", metavar=("NAME", "VALUE"), help="notebook parameter")
    nb.add_argument("--data", default=None, type=existing("dir"), help="data folder (the notebooks' data_dir)")
    nb.add_argument(
        "--personal", default=None, type=existing("dir"), help="folder of personal songs (05's personal_dir)"
    )
    nb.add_argument("--parent", default=None, help="MLflow parent run id")
    nb.add_argument("--notebooks-dir", default="notebooks", type=existing("dir"), help="where the notebooks are")
    nb.add_argument("--out", default="results/notebooks", help="where executed notebooks are kept")
    nb.set_defaults(func=cmd_notebook)

    ra = sub.add_parser("run-all", help="run the six notebooks in order under one MLflow parent run")
    ra.add_argument("--data", required=True, type=existing("dir"), help="data folder <genre>/<file>")
    ra.add_argument(
        "--personal", required=True, type=existing("dir"), help="folder of personal songs, optionally <genre>/<song>"
    )
    ra.add_argument(
        "-p",
        nargs=2,
        action="append",
        metavar=("NAME", "VALUE"),
        help="parameter for every notebook that declares it (e.g. -p epochs 5)",
    )
    ra.add_argument("--notebooks-dir", default="notebooks", type=existing("dir"), help="where the notebooks are")
    ra.add_argument("--out", default="results/notebooks", help="where executed notebooks are kept")
    ra.set_defaults(func=cmd_run_all)
