"""Drive a UWS service through a job's whole life with the AIP uws-client (Python 2.7).

Usage: python2.7 lifecycle.py JOBS_URL TOKEN. The client is used as shipped; it only gets
the bearer token as a header, since its own options know only HTTP basic authentication.
Prints one JSON object of what the client saw.
"""

import json
import sys
import time

from uws import UWS


def client(url, token):
    uws = UWS.client.Client(url=url)
    uws.connection.headers = {"Authorization": "Bearer " + token}
    return uws


def main():
    url, token = sys.argv[1], sys.argv[2]
    seen = {}
    job = client(url, token).new_job({"workflow": "hello-world", "name": "py27"})
    job_id = job.job_id
    seen["created_phase"] = job.phase[0]
    job = client(url, token).set_parameters_job(job_id, {"repeat": "2"})
    seen["parameters"] = dict((p.id, p.value) for p in job.parameters)
    job = client(url, token).run_job(job_id)
    deadline = time.time() + 120
    while job.phase[0] in ("PENDING", "QUEUED", "EXECUTING") and time.time() < deadline:
        job = client(url, token).get_job(job_id, wait="10")
    seen["phase"] = client(url, token).get_phase(job_id)
    seen["results"] = sorted(r.id for r in job.results)
    seen["result_hrefs"] = sorted(r.reference.href for r in job.results)
    listing = client(url, token).get_job_list()
    seen["listed"] = [ref.id for ref in listing.job_reference]
    other = client(url, token).new_job({"workflow": "hello-world", "sleep_s": "30"})
    other = client(url, token).run_job(other.job_id)
    other = client(url, token).abort_job(other.job_id)
    seen["aborted_phase"] = other.phase[0]
    client(url, token).delete_job(job_id)
    client(url, token).delete_job(other.job_id)
    seen["after_delete"] = [ref.id for ref in client(url, token).get_job_list().job_reference]
    seen["job_id"] = job_id
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
