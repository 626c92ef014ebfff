/* tests/mpi/refuse.c - core/dist.c built without MPI, started as rank R of N by a
 * launcher's environment: mq_dist_init must refuse with one line, printed by rank 0 only.
 * Built and run by tests/mpi/run.sh: OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_RANK=R ./refuse */
#include <stdio.h>

#include "core/dist.h"
#include "core/status.h"

int main(int argc, char **argv)
{
    bool worker = true;
    int rc = mq_dist_init(&argc, &argv, &worker);
    printf("rc %d worker %d built %d\n", rc, worker, mq_dist_built());
    return rc == MQ_EUNSUPPORTED && !worker && !mq_dist_built() ? 1 : 3;
}
