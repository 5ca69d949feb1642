"""The synthetic people renderer: identities, poses, scenes, camera models, worker processes.

Shared by every dataset's synthetic layout writer (`vireid_jax.data.<name>.layout`);
`vireid_jax.data.synthetic` says what the images are like and writes whole datasets.
"""
