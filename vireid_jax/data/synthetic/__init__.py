r"""A small synthetic visible-infrared ReID dataset, written in the real layouts.

    python -m vireid_jax.data.synthetic --layout=NAME --out=DIR [--num_ids=40] [--seed=0]
    python -m vireid_jax.data.synthetic --layout=sysu --out=DIR \
        --sample_sheet=docs/synthetic_samples.png

NAME is any dataset that declares a synthetic layout (`--help` lists them):
its package says which cameras see whom, their camera models and the list
files, and draws the people with the renderer they share (`vireid_jax.data.render`).

It is a fair stand-in for the real datasets, not a toy, so that the demo and
the ablations measure something: every identity carries

* cues that survive both modalities: body proportions (head size, shoulder and
  hip width, leg length, limb thickness), a clothing texture (stripes, checks,
  dots, colour blocks, an emblem) with its own period and orientation, sleeve
  and trouser length (bare skin is hot in infrared), hair length, garment
  structure (an open jacket over a shirt, belt, scarf, boots, trouser stripes)
  and accessories (hat, backpack, shoulder bag);
* cues only the visible cameras see: clothing, shoe, hair and skin colours,
  drawn from small palettes so that several identities share a colour.

Infrared images are rendered from a separate "temperature" channel, not from
the colours: skin is hot, clothing is as warm as its material class (thin,
cotton, knit, coat ...) which is drawn independently of its colour, prints
change the emissivity a little, accessories and backgrounds are cool, heaters
and lamps are hot. They are single-channel, blurrier, noisier and lower in
contrast. So a model that matches on colour fails across modalities, and one
that learns shape, texture and accessories succeeds.

Each image also gets nuisance: view (front, back, side), position, scale,
walking pose, per-camera scene and colour cast, illumination, background
clutter, passers-by and partial occlusion. Scenes are per camera; SYSU camera 3
(infrared) films the same room as camera 2, as in the real data. RegDB images
come from one co-registered camera pair, so each visible image has a thermal
twin with the same pose, as in the real data.

How hard it is (SYSU layout, all-search single-shot, 10 trials; a two-stem
ResNet-18 trained from scratch with CE + batch-hard triplet, P=8, K=4, on a
GPU): with 40 ids (12 test ids, chance 8%) about 16% Rank-1 after 240 steps
and 33% Rank-1 / 45% mAP after 1200, while visible-to-visible Rank-1 is about
86%: the modality gap, not the identities, is what is hard. With 12 test ids
the trial-to-trial noise is several points; with 200 ids (60 test ids) the
same model reaches 30% Rank-1 / 34% mAP after 3000 steps, still rising.

Generation is deterministic: the same arguments and library versions give
byte-identical files. The generator writes only into a new or empty folder,
and marks a finished dataset with its completion marker (`marker.py`).

Modules, one job each: `layouts` (`generate`, through each dataset's layout
writer), `marker`, `sheet` (the sample sheet) and `cli`; the renderer's
(`vireid_jax.data.render`): `palettes` (colour and material vocabularies),
`identity` (a person's fixed appearance), `canvas` (anti-aliased drawing on
an RGB + temperature canvas), `body` (pose and the shapes of a person),
`scenes` (backgrounds, clutter, occluders), `shot` (one image's nuisance and
rendering), `cameras` (RGB and thermal camera models), `workers` (several
processes). The renderer is a package of its own so that the dataset packages
can use it while `generate` looks them up in the registry.
"""

from vireid_jax.data.render.cameras import CameraSpec, to_infrared, to_visible
from vireid_jax.data.render.identity import Paint, Pattern, Person, sample_person
from vireid_jax.data.render.scenes import make_scene
from vireid_jax.data.render.shot import Nuisance, render_scene, sample_nuisance
from vireid_jax.data.synthetic.layouts import generate, layouts
from vireid_jax.data.synthetic.sheet import sample_sheet
