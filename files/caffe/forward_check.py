"""Forward pass of a prototxt with random weights through pycaffe; prints output shapes as JSON.

Usage: python3 forward_check.py NET.prototxt
Prints {"outputs": {name: shape}, "layers": [registered layer types], "version": ...}.
"""

import json
import os
import sys

os.environ.setdefault("GLOG_minloglevel", "2")  # quiet; read when caffe loads glog

import caffe
import numpy as np

caffe.set_mode_cpu()
net = caffe.Net(sys.argv[1], caffe.TEST)
data = net.blobs["data"]
data.data[...] = np.random.RandomState(0).rand(*data.data.shape)
out = net.forward()
print(
    json.dumps(
        {
            "outputs": {k: list(v.shape) for k, v in out.items()},
            "finite": bool(all(np.isfinite(v).all() for v in out.values())),
            "layers": sorted(caffe.layer_type_list()),
            "version": caffe.__version__,
        }
    )
)
