import hashlib
import shlex


def discover_inputs():
    """The DICOM folder tree and/or the image/mask manifest CSV the configuration names."""
    return [path for path in (config["input_dir"], config.get("input_manifest")) if path]


def input_fingerprint():
    """Digest of the path, size and modification time of every input file, so that a fixed, added or removed file
    anywhere in the tree reruns discovery (a folder's own mtime only sees its direct entries). The generated demo
    cohort is exempt: it does not exist yet when the first run builds its DAG."""
    if USE_DEMO:
        return "demo"
    digest = hashlib.sha256()
    for root in discover_inputs():
        if os.path.isfile(root):
            stat = os.stat(root)
            digest.update(f"{root}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
            continue
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(folder, name)
                try:
                    stat = os.stat(path)
                except OSError:
                    continue
                digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


checkpoint discover:
    """Find image series and their RTSTRUCT/SEG masks (and listed NIfTI/NRRD pairs), group them into pseudonymised
    cases and batches."""
    input:
        discover_inputs(),
    output:
        inventory=f"{INTERIM}/inventory.json",
    params:
        radflow=RADFLOW,
        key=KEY_ARGS,
        batch_size=config["batch_size"],
        rois=json.dumps(config["rois"]),
        series=json.dumps(config["series"]),
        roi_aliases=json.dumps(config["roi_aliases"]),
        input_dir=shlex.quote(config["input_dir"] or ""),  # '' (an empty argument) without DICOM input
        input_manifest=(
            f"--input-manifest {shlex.quote(config['input_manifest'])}" if config.get("input_manifest") else ""
        ),
        dates=config["pseudonymisation"]["dates"],
        fingerprint=input_fingerprint(),
        mapping=(
            f"--mapping-file {config['pseudonymisation']['mapping_file']}"
            if config["pseudonymisation"]["mapping_file"]
            else ""
        ),
    log:
        f"{LOGS}/discover.log",
    conda:
        CONDA_ENV
    shell:
        "{params.radflow} discover {params.input_dir} {output.inventory:q} --batch-size {params.batch_size}"
        " --rois {params.rois:q} --series {params.series:q} --roi-aliases {params.roi_aliases:q}"
        " {params.input_manifest} --dates {params.dates} {params.key} {params.mapping} > {log} 2>&1"


rule ingest:
    """Read one batch of cases: sorted, rescaled volumes and rasterised masks as NIfTI, pseudonymised metadata."""
    input:
        inventory=f"{INTERIM}/inventory.json",
    output:
        manifest=f"{INTERIM}/batches/{{batch}}/ingest.json",
        volumes=directory(f"{INTERIM}/batches/{{batch}}/volumes"),
    params:
        radflow=RADFLOW,
        qc=json.dumps(config["qc"]),
    log:
        f"{LOGS}/ingest/{{batch}}.log",
    conda:
        CONDA_ENV
    shell:
        "{params.radflow} ingest {input.inventory:q} {wildcards.batch} {output.manifest:q} {output.volumes:q}"
        " --qc {params.qc:q} > {log} 2>&1"


rule clinical:
    """Pseudonymise the clinical table with the same key as the images (PatientID -> case_id)."""
    input:
        clinical=config["clinical"],
    output:
        f"{INTERIM}/clinical.parquet",
    params:
        radflow=RADFLOW,
        key=KEY_ARGS,
    log:
        f"{LOGS}/clinical.log",
    conda:
        CONDA_ENV
    shell:
        "{params.radflow} clinical {input.clinical:q} {output:q} {params.key} > {log} 2>&1"
